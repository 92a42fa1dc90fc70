//! The metadata log's state machine: openraft's `RaftStateMachine` over the metadata image.
//!
//! ```text
//!  openraft ──apply(committed entries)──▶ StateMachine ──image.apply(offset, records)──┐
//!                                              │                                        │
//!                                              │ once per call: send_replace(image) ◀───┘
//!                                              ▼
//!                               watch<Arc<MetadataImage>> ──▶ the rest of the node
//!
//!  build_snapshot / install_snapshot ──▶ SnapshotStore ──▶ `snapshot` file + SharedSnapshot
//! ```
//!
//! The image itself is not persisted: the snapshot is. On start the image is rebuilt from the
//! snapshot file, and openraft re-applies the committed entries after it (the log store keeps
//! the committed log id for that).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use strom_cluster::MetadataImage;
use tokio::sync::watch;

use super::snapshot::{SharedSnapshot, SnapshotStore, decode_announced, encode_snapshot};
use crate::types::{
    Entry, LogId, MetadataBatch, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig, metadata_offset,
};

/// Counters of the state machine's work, read by metrics and by the snapshot policy.
#[derive(Debug, Default)]
pub struct ApplyStats {
    /// Entries applied (all kinds) since the process started.
    pub entries_applied: AtomicU64,
    /// Metadata records applied since the process started.
    pub records_applied: AtomicU64,
    /// Time spent in `apply` calls, in microseconds.
    pub apply_micros_total: AtomicU64,
    /// Duration of the last `apply` call, in microseconds.
    pub last_apply_micros: AtomicU64,
    /// Bytes of records (as JSON) applied since the last snapshot: Kafka's
    /// `metadata.log.max.record.bytes.between.snapshots` is compared with this.
    pub bytes_since_snapshot: AtomicU64,
}

impl ApplyStats {
    /// Counts one apply call: `entries` entries holding `records` records (`bytes` of them as
    /// JSON), which took `micros`.
    pub fn record(&self, entries: u64, records: u64, bytes: u64, micros: u64) {
        self.entries_applied.fetch_add(entries, Ordering::Relaxed);
        self.records_applied.fetch_add(records, Ordering::Relaxed);
        self.bytes_since_snapshot
            .fetch_add(bytes, Ordering::Relaxed);
        self.apply_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.last_apply_micros.store(micros, Ordering::Relaxed);
    }
}

/// The metadata image as the Raft log built it, plus what openraft tracks beside it.
pub struct StateMachine {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    publisher: watch::Sender<Arc<MetadataImage>>,
    stats: Arc<ApplyStats>,
    snapshots: Arc<SnapshotStore>,
}

impl StateMachine {
    /// Opens the state machine whose snapshot lives in `dir` (created if missing), starting
    /// from that snapshot or from an empty image, and publishes the starting image.
    pub async fn open(
        dir: &Path,
        publisher: watch::Sender<Arc<MetadataImage>>,
        stats: Arc<ApplyStats>,
    ) -> Result<StateMachine, StorageError> {
        let dir = dir.to_path_buf();
        let (snapshots, loaded) = tokio::task::spawn_blocking(move || {
            let (snapshots, decoded) = SnapshotStore::open(&dir)?;
            Ok::<_, io::Error>((snapshots, decoded.map(|d| (d.image(), d.meta))))
        })
        .await
        .map_err(|e| StorageIOError::read_snapshot(None, AnyError::error(e)))?
        .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        let (image, meta) = loaded.unwrap_or_default();
        let image = Arc::new(image);
        publisher.send_replace(Arc::clone(&image));
        Ok(StateMachine {
            image,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership,
            publisher,
            stats,
            snapshots: Arc::new(snapshots),
        })
    }

    /// A handle on the current snapshot, for serving it to observers. Take it before the
    /// state machine is handed to openraft.
    pub fn shared_snapshot(&self) -> SharedSnapshot {
        self.snapshots.shared().clone()
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    fn publish(&self) {
        self.publisher.send_replace(Arc::clone(&self.image));
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = Instant::now();
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let count = entries.len();
        let (mut records, mut bytes) = (0u64, 0u64);
        // Readers hold the published image, so this clones it once per call (topics are
        // behind `Arc`, so the clone copies pointers) and never changes what they see.
        let image = Arc::make_mut(&mut self.image);
        for entry in entries {
            debug_assert!(
                self.last_applied
                    .is_none_or(|l| l.index < entry.log_id.index),
                "entries are applied in index order"
            );
            let offset = metadata_offset(&entry.log_id);
            match entry.payload {
                EntryPayload::Normal(batch) => {
                    records += batch.0.len() as u64;
                    bytes += serialized_bytes(&batch);
                    image.apply(offset, &batch.0);
                }
                EntryPayload::Blank => image.apply(offset, &[]),
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    image.apply(offset, &[]);
                }
            }
            self.last_applied = Some(entry.log_id);
        }
        self.publish();
        let micros = started.elapsed().as_micros() as u64;
        self.stats.record(count as u64, records, bytes, micros);
        Ok(vec![(); count])
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            image: Arc::clone(&self.image),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: Arc::clone(&self.snapshots),
            stats: Arc::clone(&self.stats),
            bytes_covered: self.stats.bytes_since_snapshot.load(Ordering::Relaxed),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let bytes = Arc::new(*snapshot);
        let announced = meta.clone();
        let snapshots = Arc::clone(&self.snapshots);
        let image = tokio::task::spawn_blocking(move || {
            let decoded = decode_announced(&bytes, &announced)?;
            let image = decoded.image();
            snapshots.replace(announced, bytes, true)?;
            Ok::<_, io::Error>(image)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(e)))?
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.stats.bytes_since_snapshot.store(0, Ordering::Relaxed);
        self.publish();
        tracing::info!(
            last_log_index = meta.last_log_id.map(|l| l.index),
            snapshot_id = %meta.snapshot_id,
            "installed a metadata snapshot from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self
            .snapshots
            .shared()
            .current()
            .map(|(meta, bytes)| Snapshot {
                meta,
                snapshot: Box::new(bytes.as_ref().clone()),
            }))
    }
}

/// A view of the state machine at one applied position, written out as a snapshot by
/// openraft in a task of its own while applying goes on.
pub struct SnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshots: Arc<SnapshotStore>,
    stats: Arc<ApplyStats>,
    /// `bytes_since_snapshot` when the view was taken: what this snapshot covers.
    bytes_covered: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: self.snapshots.next_id(self.last_applied),
        };
        let signature = meta.signature();
        let (image, snapshots, written) = (
            Arc::clone(&self.image),
            Arc::clone(&self.snapshots),
            meta.clone(),
        );
        let bytes = tokio::task::spawn_blocking(move || {
            let bytes = Arc::new(encode_snapshot(&written, &image.to_records())?);
            snapshots.replace(written, Arc::clone(&bytes), false)?;
            Ok::<_, io::Error>(bytes)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), AnyError::error(e)))?
        .map_err(|e| StorageIOError::write_snapshot(Some(signature), AnyError::new(&e)))?;
        // Entries applied while this snapshot was written still count towards the next one.
        let covered = self.bytes_covered;
        let _ = self.stats.bytes_since_snapshot.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |pending| Some(pending.saturating_sub(covered)),
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Arc::unwrap_or_clone(bytes)),
        })
    }
}

/// The size of a batch's records as JSON, without building the JSON.
fn serialized_bytes(batch: &MetadataBatch) -> u64 {
    struct Counter(u64);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Records always serialize (they were deserialized from the log); if one ever did not,
    // undercounting only delays a snapshot.
    match serde_json::to_writer(&mut counter, batch) {
        Ok(()) => counter.0,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests;
