//! The single-node metadata log: a local file of record batches, replayed at start.
//!
//! This is the stand-in for the Raft-replicated metadata log: the same records, the same
//! replay, one writer. Format of `metadata.log`, a sequence of frames:
//!
//! ```text
//! u32 big-endian  payload length
//! u32 big-endian  CRC32C of the payload
//! payload         JSON array of MetadataRecord, applied atomically
//! ```
//!
//! A frame is one atomic change (a topic with all its partitions and configs). Each append is
//! fsynced before it is acknowledged. A torn or corrupt frame can only be the last one (the
//! write that was interrupted, never acknowledged), so opening truncates from the first bad
//! frame. When the file holds many frames, opening rewrites it as one snapshot frame (written
//! to a temporary file, fsynced, renamed over the old one).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

const FILE_NAME: &str = "metadata.log";
const FRAME_HEADER_BYTES: usize = 8;
/// Rewrite the log as a snapshot at open when it holds more frames than this.
const SNAPSHOT_AFTER_FRAMES: u64 = 1000;
/// No single metadata change comes near this; a larger length is corruption.
const MAX_FRAME_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata log {path}: {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata log {path}: cannot encode records: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub struct MetadataStore {
    path: PathBuf,
    file: File,
    frames: u64,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish()
    }
}

impl MetadataStore {
    /// Opens (or creates) the metadata log in `dir` and replays it into an image.
    pub fn open(dir: &Path) -> Result<(MetadataStore, MetadataImage), StoreError> {
        let path = dir.join(FILE_NAME);
        let io = |op| {
            let path = path.clone();
            move |source| StoreError::Io { op, path, source }
        };
        fs::create_dir_all(dir).map_err(io("create directory"))?;
        let mut bytes = Vec::new();
        if path.exists() {
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io("read"))?;
        }
        let (batches, valid_len) = parse_frames(&bytes);
        let mut image = MetadataImage::default();
        for batch in &batches {
            for record in batch {
                image.replay(record);
            }
        }
        if valid_len < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = valid_len,
                dropped_bytes = bytes.len() - valid_len,
                "metadata log ends with an incomplete or corrupt frame; truncating it (that change was never acknowledged)"
            );
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("open"))?;
        file.set_len(valid_len as u64).map_err(io("truncate"))?;
        file.sync_all().map_err(io("fsync"))?;
        sync_dir(dir).map_err(io("fsync directory"))?;
        let mut store = MetadataStore {
            path,
            file,
            frames: batches.len() as u64,
        };
        if store.frames > SNAPSHOT_AFTER_FRAMES {
            store.snapshot(&image)?;
        }
        Ok((store, image))
    }

    /// Appends one atomic batch of records and fsyncs it.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), StoreError> {
        let frame = encode_frame(records).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        let path = self.path.clone();
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| StoreError::Io {
                op: "append",
                path,
                source,
            })?;
        self.frames += 1;
        Ok(())
    }

    /// Replaces the log with one frame holding the records that rebuild `image`.
    pub fn snapshot(&mut self, image: &MetadataImage) -> Result<(), StoreError> {
        let frame = encode_frame(&image.to_records()).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        let tmp = self.path.with_extension("log.tmp");
        let io = |op| {
            let path = tmp.clone();
            move |source| StoreError::Io { op, path, source }
        };
        let mut f = File::create(&tmp).map_err(io("create snapshot"))?;
        f.write_all(&frame).map_err(io("write snapshot"))?;
        f.sync_all().map_err(io("fsync snapshot"))?;
        fs::rename(&tmp, &self.path).map_err(io("rename snapshot"))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir).map_err(io("fsync directory"))?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io("reopen"))?;
        self.frames = 1;
        Ok(())
    }
}

fn encode_frame(records: &[MetadataRecord]) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(records)?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Parses frames until the first one that is incomplete, corrupt or undecodable; returns the
/// batches and the length of the valid prefix.
fn parse_frames(bytes: &[u8]) -> (Vec<Vec<MetadataRecord>>, usize) {
    let mut batches = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= FRAME_HEADER_BYTES {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_be_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let start = pos + FRAME_HEADER_BYTES;
        if len > MAX_FRAME_BYTES || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(batch) = serde_json::from_slice::<Vec<MetadataRecord>>(payload) else {
            break;
        };
        batches.push(batch);
        pos = start + len;
    }
    (batches, pos)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: Uuid::from_u128(id),
        }
    }

    #[test]
    fn appended_batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, image) = MetadataStore::open(dir.path()).unwrap();
            assert!(image.topics.is_empty());
            store.append(&[topic("a", 1)]).unwrap();
            store.append(&[topic("b", 2)]).unwrap();
        }
        let (_, image) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn torn_tail_is_truncated_and_earlier_batches_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _) = MetadataStore::open(dir.path()).unwrap();
            store.append(&[topic("a", 1)]).unwrap();
            store.append(&[topic("b", 2)]).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut store, image) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), ["a"]);
        store.append(&[topic("c", 3)]).unwrap();
        drop(store);
        let (_, image) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn corrupt_frame_stops_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _) = MetadataStore::open(dir.path()).unwrap();
            store.append(&[topic("a", 1)]).unwrap();
            store.append(&[topic("b", 2)]).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (_, image) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn snapshot_keeps_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut image) = MetadataStore::open(dir.path()).unwrap();
        for i in 0..10 {
            let r = topic(&format!("t{i}"), i + 1);
            store.append(std::slice::from_ref(&r)).unwrap();
            image.replay(&r);
        }
        store.snapshot(&image).unwrap();
        store.append(&[topic("after", 99)]).unwrap();
        drop(store);
        let (store, reopened) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.frames, 2);
        assert_eq!(reopened.topics.len(), 11);
    }
}
