//! openraft's storage conformance suite against the metadata log's `LogStore` and
//! `StateMachine`, each test on a fresh directory.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use strom_cluster::MetadataImage;
use strom_quorum::TypeConfig;
use strom_quorum::storage::{ApplyStats, LogStore, StateMachine};
use strom_quorum::types::StorageError;
use tempfile::TempDir;
use tokio::sync::watch;

struct FileStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for FileStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir()
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        let raft_dir = dir.path().join("metadata").join("raft");
        let log_store = LogStore::open(&raft_dir).await?;
        let (publisher, _) = watch::channel(Arc::new(MetadataImage::default()));
        let stats = Arc::new(ApplyStats::default());
        let state_machine = StateMachine::open(&raft_dir, publisher, stats).await?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn log_store_and_state_machine_pass_the_openraft_suite() {
    if let Err(e) = Suite::test_all(FileStoreBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
