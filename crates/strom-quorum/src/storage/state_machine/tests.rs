use std::collections::BTreeSet;

use openraft::entry::RaftEntry;
use openraft::testing::log_id;
use openraft::{Membership, RaftSnapshotBuilder};
use strom_cluster::{BrokerId, ConfigResource, MetadataRecord, PartitionImage};
use uuid::Uuid;

use super::*;
use crate::storage::{SnapshotError, decode_snapshot};

fn topic_records(name: &str, id: u128) -> Vec<MetadataRecord> {
    let topic_id = Uuid::from_u128(id);
    vec![
        MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        },
        PartitionImage::new(vec![BrokerId(1)], vec![BrokerId(1)], BrokerId(1))
            .to_record(topic_id, 0),
        MetadataRecord::Config {
            resource: ConfigResource::Topic(name.into()),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        },
    ]
}

fn normal(index: u64, records: Vec<MetadataRecord>) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(MetadataBatch(records)),
    }
}

fn membership(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], None)),
    }
}

struct Opened {
    sm: StateMachine,
    images: watch::Receiver<Arc<MetadataImage>>,
    stats: Arc<ApplyStats>,
}

async fn open(dir: &Path) -> Opened {
    let (publisher, images) = watch::channel(Arc::new(MetadataImage::default()));
    let stats = Arc::new(ApplyStats::default());
    let sm = StateMachine::open(dir, publisher, Arc::clone(&stats))
        .await
        .unwrap();
    Opened { sm, images, stats }
}

/// An image rebuilt from a snapshot counts only the snapshot's records as applied.
fn same_state(a: &MetadataImage, b: &MetadataImage) -> bool {
    let mut b = b.clone();
    b.records_applied = a.records_applied;
    *a == b
}

/// Applies a membership, two topics and a blank entry (indexes 1 to 4).
async fn apply_sample(sm: &mut StateMachine) {
    let applied = sm
        .apply([
            membership(1),
            normal(2, topic_records("a", 1)),
            normal(3, topic_records("b", 2)),
            Entry::new_blank(log_id(1, 1, 4)),
        ])
        .await
        .unwrap();
    assert_eq!(applied.len(), 4);
}

#[tokio::test]
async fn apply_updates_the_image_publishes_it_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = open(dir.path()).await;
    apply_sample(&mut opened.sm).await;

    let image = opened.images.borrow().clone();
    assert!(Arc::ptr_eq(&image, opened.sm.image()));
    assert_eq!(image.applied_index(), 4);
    assert!(image.topic("a").is_some() && image.topic("b").is_some());
    let (applied, stored) = opened.sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 4)));
    assert_eq!(*stored.log_id(), Some(log_id(1, 1, 1)));
    let stats = &opened.stats;
    assert_eq!(stats.entries_applied.load(Ordering::Relaxed), 4);
    assert_eq!(stats.records_applied.load(Ordering::Relaxed), 6);
    let expected = serialized_bytes(&MetadataBatch(topic_records("a", 1)))
        + serialized_bytes(&MetadataBatch(topic_records("b", 2)));
    assert_eq!(stats.bytes_since_snapshot.load(Ordering::Relaxed), expected);
}

#[tokio::test]
async fn snapshot_survives_reopen_and_restores_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = open(dir.path()).await;
    apply_sample(&mut opened.sm).await;
    let shared = opened.sm.shared_snapshot();
    let built = opened
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 1, 4)));
    assert!(built.meta.snapshot_id.starts_with("1-4-"));
    assert_eq!(opened.stats.bytes_since_snapshot.load(Ordering::Relaxed), 0);
    assert_eq!(
        shared.current().map(|(meta, _)| meta),
        Some(built.meta.clone())
    );
    let image = Arc::clone(opened.sm.image());
    drop(opened);

    let mut reopened = open(dir.path()).await;
    assert!(same_state(&image, reopened.sm.image()));
    assert!(same_state(&image, &reopened.images.borrow()));
    let (applied, stored) = reopened.sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 4)));
    assert_eq!(stored, built.meta.last_membership);
    let current = reopened.sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot, built.snapshot);
}

#[tokio::test]
async fn install_takes_a_snapshot_built_elsewhere() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path()).await;
    apply_sample(&mut leader.sm).await;
    let built = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = open(follower_dir.path()).await;
    follower
        .sm
        .apply([normal(1, topic_records("stale", 9))])
        .await
        .unwrap();
    let mut received = follower.sm.begin_receiving_snapshot().await.unwrap();
    assert!(received.is_empty());
    received.extend_from_slice(&built.snapshot);
    follower
        .sm
        .install_snapshot(&built.meta, received)
        .await
        .unwrap();

    assert!(same_state(leader.sm.image(), follower.sm.image()));
    assert!(follower.sm.image().topic("stale").is_none());
    assert!(same_state(leader.sm.image(), &follower.images.borrow()));
    assert_eq!(
        follower.sm.applied_state().await.unwrap(),
        leader.sm.applied_state().await.unwrap()
    );
    drop(follower);
    let reopened = open(follower_dir.path()).await;
    assert!(same_state(leader.sm.image(), reopened.sm.image()));
}

#[tokio::test]
async fn install_refuses_damaged_bytes_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = open(dir.path()).await;
    apply_sample(&mut opened.sm).await;
    let built = opened
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let other = tempfile::tempdir().unwrap();
    let mut target = open(other.path()).await;
    let mut damaged = built.snapshot.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(
        target
            .sm
            .install_snapshot(&built.meta, damaged)
            .await
            .is_err()
    );
    let mut wrong_meta = built.meta.clone();
    wrong_meta.last_log_id = Some(log_id(1, 1, 9));
    let bytes = built.snapshot.clone();
    assert!(
        target
            .sm
            .install_snapshot(&wrong_meta, bytes)
            .await
            .is_err()
    );
    assert_eq!(target.sm.applied_state().await.unwrap().0, None);
    assert!(target.sm.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn a_late_build_does_not_replace_a_newer_installed_snapshot() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path()).await;
    apply_sample(&mut leader.sm).await;
    let newer = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut opened = open(dir.path()).await;
    opened
        .sm
        .apply([normal(1, topic_records("a", 1))])
        .await
        .unwrap();
    let mut late = opened.sm.get_snapshot_builder().await;
    opened
        .sm
        .install_snapshot(&newer.meta, newer.snapshot.clone())
        .await
        .unwrap();
    let older = late.build_snapshot().await.unwrap();
    assert_eq!(older.meta.last_log_id, Some(log_id(1, 1, 1)));
    let current = opened.sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, newer.meta);
    drop(opened);
    let reopened = open(dir.path()).await;
    assert_eq!(reopened.sm.image().applied_index(), 4);
}

#[test]
fn decoding_damaged_snapshot_bytes_is_an_error() {
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(1, 1, 2)),
        last_membership: StoredMembership::default(),
        snapshot_id: "1-2-1".into(),
    };
    let records = topic_records("a", 1);
    let bytes = encode_snapshot(&meta, &records).unwrap();
    let decoded = decode_snapshot(&bytes).unwrap();
    assert_eq!((decoded.meta, decoded.records), (meta, records));

    assert!(matches!(decode_snapshot(&[]), Err(SnapshotError::BadMagic)));
    assert!(matches!(
        decode_snapshot(&bytes[..bytes.len() - 1]),
        Err(SnapshotError::Incomplete)
    ));
    let mut flipped = bytes.clone();
    flipped[20] ^= 1;
    assert!(matches!(
        decode_snapshot(&flipped),
        Err(SnapshotError::Corrupt(_))
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        decode_snapshot(&longer),
        Err(SnapshotError::TrailingBytes(1))
    ));
    let mut magic = bytes;
    magic[0] = b'X';
    assert!(matches!(
        decode_snapshot(&magic),
        Err(SnapshotError::BadMagic)
    ));
}
