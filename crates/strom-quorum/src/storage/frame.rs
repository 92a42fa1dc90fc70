//! Framing and file replacement shared by every file the metadata log's storage writes.
//!
//! Every record on disk (a log entry, the vote, the snapshot body) is one frame: a length and a
//! CRC32C in front of the payload. Frames are written whole and fsynced before anyone is told
//! they are durable, so a frame that ends early or whose checksum does not match was never
//! acknowledged; readers stop there instead of guessing. Small files are never rewritten in
//! place: a new copy is written next to them, fsynced, renamed over the old one and the
//! directory is fsynced, so a crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes in front of every payload: the length and the checksum.
pub(crate) const FRAME_HEADER_BYTES: usize = 8;

/// The largest payload a small state file (vote, committed, purged) may hold. They are a few
/// dozen bytes; anything larger is damage, not data.
const STATE_PAYLOAD_BYTES_MAX: usize = 64 * 1024;

/// What [`read_frame`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameRead<'a> {
    /// A whole frame whose checksum matches; `frame_bytes` counts the header too.
    Complete {
        payload: &'a [u8],
        frame_bytes: usize,
    },
    /// The buffer ends inside the header or the payload: a write that was cut short.
    Incomplete,
    /// The header announces an impossible length or the checksum does not match.
    Corrupt(String),
}

/// Appends one frame to `out`:
///
/// ```text
/// offset 0  u32 BE  payload length in bytes (at most `payload_bytes_max`)
/// offset 4  u32 BE  CRC32C (Castagnoli) of the payload
/// offset 8  [u8]    payload
/// ```
///
/// A payload longer than `payload_bytes_max` is refused here so that nothing is ever written
/// that [`read_frame`] would reject.
pub(crate) fn encode_frame(
    payload: &[u8],
    payload_bytes_max: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= payload_bytes_max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {} byte record exceeds the {payload_bytes_max} byte limit",
                    payload.len()
                ),
            )
        })?;
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Reads the frame at the start of `buf` (the layout is on [`encode_frame`]).
pub(crate) fn read_frame(buf: &[u8], payload_bytes_max: usize) -> FrameRead<'_> {
    let Some((header, rest)) = buf.split_first_chunk::<FRAME_HEADER_BYTES>() else {
        return FrameRead::Incomplete;
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let length = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    let crc = u32::from_be_bytes([c0, c1, c2, c3]);
    if length > payload_bytes_max {
        return FrameRead::Corrupt(format!(
            "the header announces {length} bytes, more than the {payload_bytes_max} byte limit"
        ));
    }
    let Some(payload) = rest.get(..length) else {
        return FrameRead::Incomplete;
    };
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return FrameRead::Corrupt(format!(
            "checksum mismatch: the header says {crc:#010x}, the payload has {actual:#010x}"
        ));
    }
    FrameRead::Complete {
        payload,
        frame_bytes: FRAME_HEADER_BYTES + length,
    }
}

/// Writes `bytes` to a new file at `path` and fsyncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Renames `from` over `to` inside `dir` and fsyncs `dir`, so the rename survives a crash.
pub(crate) fn rename_synced(dir: &Path, from: &str, to: &str) -> io::Result<()> {
    fs::rename(dir.join(from), dir.join(to))?;
    sync_dir(dir)
}

/// Fsyncs a directory: makes creations, renames and removals of its files durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` atomically: `name.tmp` is written and fsynced, renamed
/// over `name`, and `dir` is fsynced.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}.tmp");
    write_synced(&dir.join(&tmp), bytes)?;
    rename_synced(dir, &tmp, name)
}

/// Removes `dir/name.tmp` if a crash left it behind: it was never renamed, so it holds
/// nothing anyone was told is durable.
pub(crate) fn remove_stale_tmp(dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(dir.join(format!("{name}.tmp"))) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The bytes of a small state file holding `value`: exactly one frame whose payload is
/// `value` as JSON (the frame layout is on [`encode_frame`]).
pub(crate) fn encode_state<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(value).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    encode_frame(&payload, STATE_PAYLOAD_BYTES_MAX, &mut out)?;
    Ok(out)
}

/// Reads a small state file written by [`encode_state`]; `None` when it does not exist.
///
/// State files are replaced atomically, never appended to, so unlike the log a short or
/// damaged one is not a torn write that can be dropped: it is an error.
pub(crate) fn read_state<T: DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
    match read_frame(&bytes, STATE_PAYLOAD_BYTES_MAX) {
        FrameRead::Complete {
            payload,
            frame_bytes,
        } if frame_bytes == bytes.len() => serde_json::from_slice(payload)
            .map(Some)
            .map_err(|e| invalid(e.to_string())),
        FrameRead::Complete { frame_bytes, .. } => Err(invalid(format!(
            "{} bytes follow the frame",
            bytes.len() - frame_bytes
        ))),
        FrameRead::Incomplete => Err(invalid("the file ends inside its frame".into())),
        FrameRead::Corrupt(why) => Err(invalid(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_detects_damage() {
        let mut buf = Vec::new();
        encode_frame(b"hello", 16, &mut buf).unwrap();
        assert_eq!(
            read_frame(&buf, 16),
            FrameRead::Complete {
                payload: b"hello",
                frame_bytes: 13
            }
        );
        assert_eq!(read_frame(&buf[..12], 16), FrameRead::Incomplete);
        assert_eq!(read_frame(&buf[..3], 16), FrameRead::Incomplete);
        buf[10] ^= 1;
        assert!(matches!(read_frame(&buf, 16), FrameRead::Corrupt(_)));
        assert!(matches!(read_frame(&buf, 4), FrameRead::Corrupt(_)));
    }

    #[test]
    fn oversized_payload_is_refused() {
        assert!(encode_frame(&[0; 17], 16, &mut Vec::new()).is_err());
    }

    #[test]
    fn state_file_is_replaced_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_state::<u64>(dir.path(), "x").unwrap(), None);
        replace_file(dir.path(), "x", &encode_state(&7u64).unwrap()).unwrap();
        replace_file(dir.path(), "x", &encode_state(&8u64).unwrap()).unwrap();
        assert_eq!(read_state::<u64>(dir.path(), "x").unwrap(), Some(8));
        assert!(!dir.path().join("x.tmp").exists());
        let mut bytes = fs::read(dir.path().join("x")).unwrap();
        bytes.pop();
        fs::write(dir.path().join("x"), &bytes).unwrap();
        assert!(read_state::<u64>(dir.path(), "x").is_err());
    }
}
