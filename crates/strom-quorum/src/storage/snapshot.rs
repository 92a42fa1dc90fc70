//! Snapshots of the metadata image: their byte format, the current snapshot shared with the
//! leader's observer service, and keeping it on disk.
//!
//! A snapshot is the records that rebuild the image (`MetadataImage::to_records`) plus the
//! Raft position they reflect. The same bytes are the snapshot file, openraft's
//! `SnapshotData` sent to lagging voters, and what observers (broker-only nodes) fetch and
//! decode with [`decode_snapshot`]. The state machine and its snapshot builders write the file
//! through [`SnapshotStore`], which also updates the [`SharedSnapshot`] every reader sees.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use strom_cluster::{MetadataImage, MetadataRecord};

use super::frame::{FrameRead, encode_frame, read_frame, rename_synced, write_synced};
use crate::types::{LogId, SnapshotMeta, StoredMembership, metadata_offset};

pub(crate) const SNAPSHOT_FILE: &str = "snapshot";

/// Identifies the bytes as a Strom metadata snapshot, format version 1.
const MAGIC: [u8; 8] = *b"STRMSNP1";

/// Four times what the largest clusters need; a larger header means damage.
const BODY_BYTES_MAX: usize = 1 << 30;

/// Why snapshot bytes could not be decoded or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Strom metadata snapshot: it does not start with {MAGIC:?}")]
    BadMagic,
    #[error("the snapshot body is incomplete")]
    Incomplete,
    #[error("the snapshot body is damaged: {0}")]
    Corrupt(String),
    #[error("{0} bytes follow the snapshot body")]
    TrailingBytes(usize),
    #[error("the snapshot body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the snapshot is too large: {0}")]
    TooLarge(io::Error),
    #[error("the snapshot holds {found} but was announced as {announced}")]
    MetaMismatch { found: String, announced: String },
}

impl From<SnapshotError> for io::Error {
    fn from(e: SnapshotError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

#[derive(Serialize)]
struct BodyRef<'a> {
    snapshot_id: &'a str,
    last_log_id: &'a Option<LogId>,
    last_membership: &'a StoredMembership,
    records: &'a [MetadataRecord],
}

#[derive(Deserialize)]
struct Body {
    snapshot_id: String,
    last_log_id: Option<LogId>,
    last_membership: StoredMembership,
    records: Vec<MetadataRecord>,
}

/// A decoded snapshot: where it stands in the metadata log and the records of the image.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedSnapshot {
    pub meta: SnapshotMeta,
    pub records: Vec<MetadataRecord>,
}

impl DecodedSnapshot {
    /// The last log id the snapshot covers.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.meta.last_log_id
    }

    /// The quorum membership as of the snapshot.
    pub fn last_membership(&self) -> &StoredMembership {
        &self.meta.last_membership
    }

    /// Rebuilds the image the snapshot was taken of.
    pub fn image(&self) -> MetadataImage {
        let mut image = MetadataImage::default();
        match &self.meta.last_log_id {
            Some(last) => image.apply(metadata_offset(last), &self.records),
            // Only an empty state machine has no position; replay anyway rather than drop.
            None => self.records.iter().for_each(|r| image.replay(r)),
        }
        image
    }
}

/// Encodes a snapshot:
///
/// ```text
/// offset 0   [u8; 8]  magic "STRMSNP1"
/// offset 8   u32 BE   body length in bytes (at most 1 GiB)
/// offset 12  u32 BE   CRC32C (Castagnoli) of the body
/// offset 16  [u8]     body, JSON: {"snapshot_id": "<term>-<index>-<n>",
///                     "last_log_id": LogId or null, "last_membership": StoredMembership,
///                     "records": [MetadataRecord, ...]}
/// ```
///
/// Nothing follows the body.
pub fn encode_snapshot(
    meta: &SnapshotMeta,
    records: &[MetadataRecord],
) -> Result<Vec<u8>, SnapshotError> {
    let body = serde_json::to_vec(&BodyRef {
        snapshot_id: &meta.snapshot_id,
        last_log_id: &meta.last_log_id,
        last_membership: &meta.last_membership,
        records,
    })?;
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + body.len());
    out.extend_from_slice(&MAGIC);
    encode_frame(&body, BODY_BYTES_MAX, &mut out).map_err(SnapshotError::TooLarge)?;
    Ok(out)
}

/// Decodes and validates bytes made by [`encode_snapshot`]; damage is an error, never a panic.
pub fn decode_snapshot(bytes: &[u8]) -> Result<DecodedSnapshot, SnapshotError> {
    let frame = bytes.strip_prefix(&MAGIC).ok_or(SnapshotError::BadMagic)?;
    let body = match read_frame(frame, BODY_BYTES_MAX) {
        FrameRead::Complete {
            payload,
            frame_bytes,
        } if frame_bytes == frame.len() => payload,
        FrameRead::Complete { frame_bytes, .. } => {
            return Err(SnapshotError::TrailingBytes(frame.len() - frame_bytes));
        }
        FrameRead::Incomplete => return Err(SnapshotError::Incomplete),
        FrameRead::Corrupt(why) => return Err(SnapshotError::Corrupt(why)),
    };
    let body: Body = serde_json::from_slice(body)?;
    Ok(DecodedSnapshot {
        meta: SnapshotMeta {
            last_log_id: body.last_log_id,
            last_membership: body.last_membership,
            snapshot_id: body.snapshot_id,
        },
        records: body.records,
    })
}

/// Decodes `bytes` and checks they hold the snapshot `announced` says they do.
pub(crate) fn decode_announced(
    bytes: &[u8],
    announced: &SnapshotMeta,
) -> Result<DecodedSnapshot, SnapshotError> {
    let decoded = decode_snapshot(bytes)?;
    if decoded.meta.last_log_id != announced.last_log_id
        || decoded.meta.last_membership != announced.last_membership
    {
        return Err(SnapshotError::MetaMismatch {
            found: decoded.meta.to_string(),
            announced: announced.to_string(),
        });
    }
    Ok(decoded)
}

/// A snapshot's metadata and its bytes (in the format of [`encode_snapshot`]).
type CurrentSnapshot = Option<(SnapshotMeta, Arc<Vec<u8>>)>;

/// The current snapshot and its bytes, shared between the state machine and whoever serves
/// snapshots to observers. Cloning is cheap.
#[derive(Debug, Clone, Default)]
pub struct SharedSnapshot {
    current: Arc<RwLock<CurrentSnapshot>>,
}

impl SharedSnapshot {
    /// The current snapshot, if one was built or installed.
    pub fn current(&self) -> CurrentSnapshot {
        // The value is replaced whole, so a panic elsewhere cannot leave it half-written.
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.clone()
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.current().and_then(|(meta, _)| meta.last_log_id)
    }

    fn set(&self, meta: SnapshotMeta, bytes: Arc<Vec<u8>>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Some((meta, bytes));
    }
}

/// The snapshot file in a directory. Its methods do blocking IO: call them from
/// `spawn_blocking`.
#[derive(Debug)]
pub(crate) struct SnapshotStore {
    dir: PathBuf,
    shared: SharedSnapshot,
    /// Serializes replacing the file, so a build that finishes late cannot overwrite a newer
    /// snapshot installed meanwhile (openraft builds in a spawned task).
    replace: Mutex<()>,
    /// Makes snapshot ids and temp file names unique within the process.
    builds: AtomicU64,
}

impl SnapshotStore {
    /// Opens the snapshot file in `dir`, if any, validating it.
    pub(crate) fn open(dir: &Path) -> io::Result<(SnapshotStore, Option<DecodedSnapshot>)> {
        fs::create_dir_all(dir)?;
        remove_stale_tmp(dir)?;
        let store = SnapshotStore {
            dir: dir.to_path_buf(),
            shared: SharedSnapshot::default(),
            replace: Mutex::new(()),
            builds: AtomicU64::new(0),
        };
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((store, None)),
            Err(e) => return Err(e),
        };
        // The file is replaced atomically, so damage is not a torn write: refuse to start
        // rather than silently forget the metadata it holds.
        let decoded = decode_snapshot(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        store.shared.set(decoded.meta.clone(), Arc::new(bytes));
        Ok((store, Some(decoded)))
    }

    pub(crate) fn shared(&self) -> &SharedSnapshot {
        &self.shared
    }

    /// A new snapshot id for a snapshot ending at `last`: `<term>-<index>-<n>`.
    pub(crate) fn next_id(&self, last: Option<LogId>) -> String {
        let n = self.builds.fetch_add(1, Ordering::Relaxed) + 1;
        let (term, index) = last.map_or((0, 0), |l| (l.leader_id.term, l.index));
        format!("{term}-{index}-{n}")
    }

    /// Makes `bytes` the snapshot file (temp file, fsync, rename, fsync the directory) and the
    /// current snapshot. Unless `force`, a snapshot older than the current one is dropped and
    /// `false` returned.
    pub(crate) fn replace(
        &self,
        meta: SnapshotMeta,
        bytes: Arc<Vec<u8>>,
        force: bool,
    ) -> io::Result<bool> {
        let n = self.builds.fetch_add(1, Ordering::Relaxed);
        let tmp = format!("{SNAPSHOT_FILE}.tmp-{n}");
        write_synced(&self.dir.join(&tmp), &bytes)?;
        let _guard = self.replace.lock().unwrap_or_else(PoisonError::into_inner);
        if !force && self.shared.last_log_id() > meta.last_log_id {
            fs::remove_file(self.dir.join(&tmp))?;
            return Ok(false);
        }
        rename_synced(&self.dir, &tmp, SNAPSHOT_FILE)?;
        self.shared.set(meta, bytes);
        Ok(true)
    }
}

/// Removes temp files a crash left before their rename: nobody was told they were durable.
fn remove_stale_tmp(dir: &Path) -> io::Result<()> {
    let prefix = format!("{SNAPSHOT_FILE}.tmp");
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
