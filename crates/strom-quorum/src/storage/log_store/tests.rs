use std::fs;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::log_id;
use openraft::{EntryPayload, RaftLogReader};
use strom_cluster::MetadataRecord;

use super::*;
use crate::types::MetadataBatch;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(MetadataBatch(vec![MetadataRecord::Cluster {
            cluster_id: format!("c{index}"),
        }])),
    }
}

fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| entry(term, i)).collect()
}

async fn indexes(store: &mut LogStore) -> Vec<u64> {
    let kept = store.try_get_log_entries(..).await.unwrap();
    kept.iter().map(|e| e.log_id.index).collect()
}

fn log_file_len(dir: &Path) -> u64 {
    fs::metadata(dir.join(LOG_FILE)).unwrap().len()
}

/// The byte position where the frame of the `n`-th entry in the file (0-based) starts.
fn frame_position(dir: &Path, n: usize) -> usize {
    let bytes = fs::read(dir.join(LOG_FILE)).unwrap();
    let mut position = 0;
    for _ in 0..n {
        match read_frame(&bytes[position..], ENTRY_PAYLOAD_BYTES_MAX) {
            FrameRead::Complete { frame_bytes, .. } => position += frame_bytes,
            other => panic!("frame {n} not found: {other:?}"),
        }
    }
    position
}

#[tokio::test]
async fn entries_vote_and_committed_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=3)).await.unwrap();
    store.save_vote(&Vote::new(2, 1)).await.unwrap();
    store.save_committed(Some(log_id(1, 1, 2))).await.unwrap();
    let written = store.try_get_log_entries(..).await.unwrap();
    drop(store);

    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(store.try_get_log_entries(..).await.unwrap(), written);
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 1, 2)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 3)));
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(store.log_bytes(), log_file_len(dir.path()));
}

#[tokio::test]
async fn entry_frames_hold_the_entry_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append([entry(1, 7)]).await.unwrap();
    let bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
    let FrameRead::Complete { payload, .. } = read_frame(&bytes, ENTRY_PAYLOAD_BYTES_MAX) else {
        panic!("no frame");
    };
    assert_eq!(
        std::str::from_utf8(payload).unwrap(),
        r#"{"log_id":{"leader_id":{"term":1,"node_id":1},"index":7},"payload":{"Normal":[{"type":"cluster","cluster_id":"c7"}]}}"#
    );
}

#[tokio::test]
async fn recovery_truncates_torn_tail_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=3)).await.unwrap();
    drop(store);
    // The last frame loses its final bytes, as if the machine stopped mid-write.
    let whole = log_file_len(dir.path());
    let torn_at = frame_position(dir.path(), 2) as u64;
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(LOG_FILE))
        .unwrap()
        .set_len(whole - 3)
        .unwrap();

    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(indexes(&mut store).await, vec![1, 2]);
    assert_eq!(log_file_len(dir.path()), torn_at);
    store.blocking_append(entries(2, 3..=4)).await.unwrap();
    drop(store);

    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4]);
    let last = store.try_get_log_entries(4..).await.unwrap();
    assert_eq!(last[0].log_id, log_id(2, 1, 4));
}

#[tokio::test]
async fn recovery_stops_at_a_corrupt_frame_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=5)).await.unwrap();
    drop(store);
    let third = frame_position(dir.path(), 2);
    let mut bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
    bytes[third + FRAME_HEADER_BYTES + 2] ^= 0x20;
    fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();

    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(indexes(&mut store).await, vec![1, 2]);
    assert_eq!(log_file_len(dir.path()), third as u64);
}

#[tokio::test]
async fn purge_then_reopen_keeps_later_entries_and_the_purged_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=10)).await.unwrap();
    let file_len = log_file_len(dir.path());

    // Two purged frames against eight kept: not worth a rewrite yet.
    store.purge(log_id(1, 1, 2)).await.unwrap();
    assert_eq!(log_file_len(dir.path()), file_len);
    assert!(store.log_bytes() < file_len);
    drop(store);
    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(indexes(&mut store).await, (3..=10).collect::<Vec<_>>());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));

    // Now more is purged than kept: the file is rewritten with the kept entries only.
    store.purge(log_id(1, 1, 6)).await.unwrap();
    assert_eq!(log_file_len(dir.path()), store.log_bytes());
    store.blocking_append([entry(1, 11)]).await.unwrap();
    drop(store);
    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(indexes(&mut store).await, vec![7, 8, 9, 10, 11]);
    let reader = store.get_log_reader().await;
    assert_eq!(reader.last_purged(), Some(log_id(1, 1, 6)));
    assert_eq!(reader.entries(8..10).len(), 2);
}

#[tokio::test]
async fn purge_past_the_last_entry_leaves_an_empty_log_at_the_purged_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=3)).await.unwrap();
    store.purge(log_id(2, 1, 20)).await.unwrap();
    assert_eq!(log_file_len(dir.path()), 0);
    store.blocking_append([entry(2, 21)]).await.unwrap();
    drop(store);
    let mut store = LogStore::open(dir.path()).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 1, 20)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 21)));
}

#[tokio::test]
async fn truncate_then_reopen_drops_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.blocking_append(entries(1, 1..=5)).await.unwrap();
    store.truncate(log_id(1, 1, 3)).await.unwrap();
    assert_eq!(log_file_len(dir.path()), store.log_bytes());
    // A new leader's entries replace the truncated ones.
    store.blocking_append(entries(2, 3..=4)).await.unwrap();
    drop(store);

    let mut store = LogStore::open(dir.path()).await.unwrap();
    let kept = store.try_get_log_entries(..).await.unwrap();
    let ids: Vec<LogId> = kept.iter().map(|e| e.log_id).collect();
    assert_eq!(
        ids,
        vec![
            log_id(1, 1, 1),
            log_id(1, 1, 2),
            log_id(2, 1, 3),
            log_id(2, 1, 4)
        ]
    );
}

#[tokio::test]
async fn stale_temp_files_are_removed_and_a_damaged_vote_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    store.save_vote(&Vote::new(3, 1)).await.unwrap();
    drop(store);
    fs::write(dir.path().join("vote.tmp"), b"half").unwrap();
    let mut store = LogStore::open(dir.path()).await.unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
    assert!(!dir.path().join("vote.tmp").exists());
    drop(store);

    let mut vote = fs::read(dir.path().join(VOTE_FILE)).unwrap();
    let last = vote.len() - 1;
    vote[last] ^= 1;
    fs::write(dir.path().join(VOTE_FILE), &vote).unwrap();
    assert!(LogStore::open(dir.path()).await.is_err());
}
