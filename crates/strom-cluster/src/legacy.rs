//! The metadata file of single-node Strom (before the Raft quorum), read once to migrate a
//! data directory.
//!
//! Format of `metadata/metadata.log`, a sequence of frames:
//!
//! ```text
//! u32 big-endian  payload length
//! u32 big-endian  CRC32C of the payload
//! payload         JSON array of records, applied atomically
//! ```
//!
//! A torn or corrupt frame could only be the last one (a write that was never acknowledged),
//! so reading stops at the first bad frame. The records are the ones of this crate's
//! [`MetadataRecord`] before broker registrations gained epochs and fencing; registrations are
//! dropped (every broker registers anew when it starts) and the rest is converted.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use uuid::Uuid;

use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch};
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{ConfigResource, MetadataRecord};

/// The file name, under the data directory's `metadata/`.
pub const FILE_NAME: &str = "metadata.log";
const FRAME_HEADER_BYTES: usize = 8;
/// No single metadata change comes near this; a larger length is corruption.
const MAX_FRAME_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[error("legacy metadata log {path}: {source}")]
pub struct LegacyError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A record as single-node Strom wrote it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LegacyRecord {
    Cluster {
        cluster_id: String,
    },
    RegisterBroker {},
    Topic {
        name: String,
        topic_id: Uuid,
    },
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        in_sync_replicas: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    RemoveTopic {
        topic_id: Uuid,
    },
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    ProducerIds {
        broker_id: i32,
        next_producer_id: i64,
    },
}

impl LegacyRecord {
    fn convert(self) -> Option<MetadataRecord> {
        let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
        Some(match self {
            LegacyRecord::Cluster { cluster_id } => MetadataRecord::Cluster { cluster_id },
            LegacyRecord::RegisterBroker {} => return None,
            LegacyRecord::Topic { name, topic_id } => MetadataRecord::Topic { name, topic_id },
            LegacyRecord::Partition {
                topic_id,
                partition,
                replicas,
                in_sync_replicas,
                leader,
                leader_epoch,
                partition_epoch,
            } => PartitionImage {
                leader_epoch: LeaderEpoch(leader_epoch),
                partition_epoch: PartitionEpoch(partition_epoch),
                ..PartitionImage::new(ids(replicas), ids(in_sync_replicas), BrokerId(leader))
            }
            .to_record(topic_id, partition),
            LegacyRecord::RemoveTopic { topic_id } => MetadataRecord::RemoveTopic { topic_id },
            LegacyRecord::Config {
                resource,
                name,
                value,
            } => MetadataRecord::Config {
                resource,
                name,
                value,
            },
            LegacyRecord::ProducerIds {
                broker_id,
                next_producer_id,
            } => MetadataRecord::ProducerIds {
                broker_id: BrokerId(broker_id),
                next_producer_id,
            },
        })
    }
}

/// Reads the legacy metadata log in `dir`, if there is one, and returns the records that
/// rebuild its state (without broker registrations).
pub fn read(dir: &Path) -> Result<Option<Vec<MetadataRecord>>, LegacyError> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| LegacyError {
            path: path.clone(),
            source,
        })?;
    let mut image = MetadataImage::default();
    for batch in parse_frames(&bytes) {
        for record in batch.into_iter().filter_map(LegacyRecord::convert) {
            image.replay(&record);
        }
    }
    Ok(Some(image.to_records()))
}

/// Parses frames until the first one that is incomplete, corrupt or undecodable.
fn parse_frames(bytes: &[u8]) -> Vec<Vec<LegacyRecord>> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= FRAME_HEADER_BYTES {
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let (len, crc) = (word(pos) as usize, word(pos + 4));
        let start = pos + FRAME_HEADER_BYTES;
        if len > MAX_FRAME_BYTES || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(batch) = serde_json::from_slice::<Vec<LegacyRecord>>(payload) else {
            break;
        };
        batches.push(batch);
        pos = start + len;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(json: &str) -> Vec<u8> {
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&crc32c::crc32c(json.as_bytes()).to_be_bytes());
        out.extend_from_slice(json.as_bytes());
        out
    }

    #[test]
    fn a_single_node_metadata_log_converts_without_registrations() {
        let dir = tempfile::tempdir().unwrap();
        let id = "00000000-0000-0000-0000-000000000007";
        let mut bytes = frame(
            r#"[{"type":"cluster","cluster_id":"c1"},{"type":"register_broker","broker_id":1,"host":"h","port":9092,"rack":null}]"#,
        );
        bytes.extend(frame(&format!(
            r#"[{{"type":"topic","name":"t","topic_id":"{id}"}},{{"type":"partition","topic_id":"{id}","partition":0,"replicas":[1],"in_sync_replicas":[1],"leader":1,"leader_epoch":2,"partition_epoch":3}},{{"type":"config","resource":{{"kind":"topic","name":"t"}},"name":"retention.ms","value":"5"}}]"#
        )));
        bytes.extend(frame(
            r#"[{"type":"producer_ids","broker_id":1,"next_producer_id":2000}]"#,
        ));
        // A torn last frame was never acknowledged and is ignored.
        bytes.extend_from_slice(&[0, 0, 0, 50, 1, 2]);
        std::fs::write(dir.path().join(FILE_NAME), bytes).unwrap();

        let records = read(dir.path()).unwrap().unwrap();
        let mut image = MetadataImage::default();
        for r in &records {
            image.replay(r);
        }
        assert_eq!(image.cluster_id.as_deref(), Some("c1"));
        assert!(image.brokers.is_empty());
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (BrokerId(1), LeaderEpoch(2)));
        assert_eq!(image.topic_configs("t").unwrap()["retention.ms"], "5");
        assert_eq!(image.next_producer_id, 2000);
    }

    #[test]
    fn no_file_means_nothing_to_migrate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
    }
}
